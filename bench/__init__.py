"""squ-cron benchmarks, measured side by side with references in the same run.

``python -m bench`` runs every benchmark and prints one markdown table (metric,
squ-cron, reference, ratio, goal, pass/fail); ``python -m bench NAME`` runs one.
See ``docs/benchmarks.md`` for what each number means.
"""

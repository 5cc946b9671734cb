"""References measured in the same run as squ-cron: the machine's floor and peers.

Each function here needs nothing of squ-cron, returns plain numbers, and is
bounded by its arguments; the ``bench_*`` modules turn them into rows.
"""

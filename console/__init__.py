"""squ: the operator's console (Textual TUI and scriptable CLI)."""

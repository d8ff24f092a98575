"""Trading: forms (see ARCHITECTURE.md §1 for what belongs here)."""

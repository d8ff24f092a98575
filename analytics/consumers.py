"""Analytics: consumers (see ARCHITECTURE.md §1 for what belongs here)."""

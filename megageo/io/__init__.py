"""The lowest floor: file-system helpers every writer shares (atomic.py: write-then-rename with fsync)."""

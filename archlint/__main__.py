"""``python -m archlint`` runs the command line."""

from archlint.cli import entry

if __name__ == "__main__":  # not when a spawned worker process (archlint --jobs) imports this module
    entry()

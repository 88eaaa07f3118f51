"""`python -m hostmap`."""

from hostmap.cli import entrypoint

if __name__ == "__main__":
    entrypoint()

"""Container health check: `python deploy/healthcheck.py URL` exits 0 if URL answers 2xx."""

import sys
import urllib.error
import urllib.request


def main() -> int:
    """Fetches the URL given on the command line."""
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=4) as response:
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

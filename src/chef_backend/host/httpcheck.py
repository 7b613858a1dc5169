"""One HTTP GET that tells "refused" (nothing listens) apart from "no answer" (frozen or cut off)."""

from __future__ import annotations

import urllib.error
import urllib.request

REFUSED = 0


def http_status(url: str, timeout: float) -> int | None:
    """The status code; REFUSED (0) when the connection is refused; None when nothing answers in time."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except ConnectionRefusedError:
        return REFUSED
    except urllib.error.URLError as exc:
        return REFUSED if isinstance(exc.reason, ConnectionRefusedError) else None
    except OSError:
        return None

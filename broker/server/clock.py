"""Wall-clock time for the trio shell; the sans-IO cores take now_ms as an argument."""

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000

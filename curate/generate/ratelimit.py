"""Client-side rate limits (requests and tokens per minute) and the pauses a server asks for.

Token budgets are charged with the prompt's estimated size before a request and with the real completion size
after it (the bucket may go into debt), so a long run converges to the limit without knowing output lengths.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Mapping


class TokenBucket:
    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)  # one second of burst
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 when it is)."""
        self._refill()
        need = min(amount, self.capacity) - self.level
        return 0.0 if need <= 0 else need / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount


class RateLimiter:
    """Waits until a request may go: within rpm/tpm and after any pause a server asked for."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self.requests = TokenBucket(rpm) if rpm else None
        self.tokens = TokenBucket(tpm) if tpm else None
        self.paused_until = 0.0

    def pause_until(self, deadline: float) -> None:
        self.paused_until = max(self.paused_until, deadline)

    async def acquire(self, prompt_tokens: int = 0) -> None:
        while True:
            wait = self.paused_until - time.monotonic()
            if self.requests is not None:
                wait = max(wait, self.requests.wait_for(1))
            if self.tokens is not None:
                wait = max(wait, self.tokens.wait_for(prompt_tokens))
            if wait <= 0:
                break
            await asyncio.sleep(min(wait, 5.0))
        if self.requests is not None:
            self.requests.take(1)
        if self.tokens is not None:
            self.tokens.take(prompt_tokens)

    def charge(self, completion_tokens: int) -> None:
        if self.tokens is not None and completion_tokens:
            self.tokens.take(completion_tokens)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """OpenAI's reset headers: '1s', '6m0s', '250ms', '1h2m3.5s'; a bare number is seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    return sum(float(value) * _UNIT[unit] for value, unit in parts) if parts else None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """How long the server asks us to wait: Retry-After (seconds or HTTP date), retry-after-ms, or the reset time of
    an exhausted x-ratelimit budget."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return float(lower["retry-after-ms"]) / 1000.0
        except ValueError:
            pass
    if "retry-after" in lower:
        value = lower["retry-after"]
        try:
            return max(0.0, float(value))
        except ValueError:
            date = email.utils.parsedate_to_datetime(value) if value else None
            if date is not None:
                return max(0.0, date.timestamp() - time.time())
    return exhausted_reset(lower)


def exhausted_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until an exhausted budget resets (x-ratelimit-remaining-* is 0), from the x-ratelimit-reset-* header."""
    waits = []
    for kind in ("requests", "tokens"):
        remaining = headers.get(f"x-ratelimit-remaining-{kind}")
        reset = headers.get(f"x-ratelimit-reset-{kind}")
        if remaining is not None and reset is not None:
            try:
                if float(remaining) <= 0:
                    seconds = parse_duration(reset)
                    if seconds is not None:
                        waits.append(seconds)
            except ValueError:
                continue
    return max(waits) if waits else None

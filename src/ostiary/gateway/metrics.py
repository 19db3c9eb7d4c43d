"""Prometheus metrics (issue item 9), in the text exposition format, kept in plain counters.

Served on the gateway's own path (``/_ostiary/metrics``), which no route can proxy.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

__all__ = ["Metrics"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.upstream_errors: dict[tuple[str, str], int] = defaultdict(int)
        self.rate_limited: dict[str, int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._sum: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        if status == 429:
            self.rate_limited[route] += 1
        counts = self._buckets.setdefault(route, [0] * len(BUCKETS))
        index = bisect.bisect_left(BUCKETS, seconds)
        if index < len(BUCKETS):
            counts[index] += 1
        self._sum[route] += seconds
        self._count[route] += 1

    def upstream_error(self, route: str, kind: str) -> None:
        self.upstream_errors[(route, kind)] += 1

    def render(self) -> str:
        lines = ["# HELP ostiary_gateway_requests_total Requests answered, by route and status.",
                 "# TYPE ostiary_gateway_requests_total counter"]
        lines += [f'ostiary_gateway_requests_total{{route="{_label(r)}",status="{s}"}} {n}'
                  for (r, s), n in sorted(self.requests.items())]
        lines += ["# HELP ostiary_gateway_request_duration_seconds Time to the answer's first byte, by route.",
                  "# TYPE ostiary_gateway_request_duration_seconds histogram"]
        for route, counts in sorted(self._buckets.items()):
            name, running = _label(route), 0
            for bound, count in zip(BUCKETS, counts, strict=True):
                running += count
                lines.append(f'ostiary_gateway_request_duration_seconds_bucket{{route="{name}",le="{bound}"}} '
                             f"{running}")
            lines.append(f'ostiary_gateway_request_duration_seconds_bucket{{route="{name}",le="+Inf"}} '
                         f"{self._count[route]}")
            lines.append(f'ostiary_gateway_request_duration_seconds_sum{{route="{name}"}} {self._sum[route]:.6f}')
            lines.append(f'ostiary_gateway_request_duration_seconds_count{{route="{name}"}} {self._count[route]}')
        lines += ["# HELP ostiary_gateway_upstream_errors_total Upstream failures (unreachable, timeout), by route.",
                  "# TYPE ostiary_gateway_upstream_errors_total counter"]
        lines += [f'ostiary_gateway_upstream_errors_total{{route="{_label(r)}",kind="{k}"}} {n}'
                  for (r, k), n in sorted(self.upstream_errors.items())]
        lines += ["# HELP ostiary_gateway_rate_limited_total Requests refused by a rate limit, by route.",
                  "# TYPE ostiary_gateway_rate_limited_total counter"]
        lines += [f'ostiary_gateway_rate_limited_total{{route="{_label(r)}"}} {n}'
                  for r, n in sorted(self.rate_limited.items())]
        return "\n".join(lines) + "\n"

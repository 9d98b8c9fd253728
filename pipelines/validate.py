"""DVC stage `validate`: Great Expectations suites per source; quarantine failing rows."""

from __future__ import annotations

import sys
import time

from featureops.config import ConfigError, stage_params
from featureops.validation import BatchValidationError, parse_reference_time, run_validate


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    try:
        params, _ = stage_params(__doc__, argv)
        reference = parse_reference_time((params.get("validate") or {}).get("reference_time"))
        summary = run_validate(params, reference_time=reference)
    except (BatchValidationError, ConfigError, ValueError) as exc:
        print(f"validate failed: {exc}", file=sys.stderr)
        return 1
    print(f"validate: reference time {reference.isoformat()}")
    for source, m in summary.items():
        print(
            f"validate {source}: {m['rows_in']} in, {m['accepted']} accepted, "
            f"{m['quarantined']} quarantined ({m['bad_row_share']:.2%})"
        )
    print(f"validate: done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

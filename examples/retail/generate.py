"""Deterministic generator of the retail example's raw drops: card transactions + chargebacks.

    python examples/retail/generate.py --out data/landing [--seed 7 --customers 300 --days 21]

Writes, under ``--out`` (the landing zone):
  transactions/<YYYY-MM-DD>.csv   transaction_id, customer_id, merchant_id, ts, amount, channel
  customers/customers.csv         customer_id, segment, signup_date
and the label file OUTSIDE the landing zone (default ``<out>/../labels/chargebacks.csv``):
  customer_id, merchant_id, ts, is_fraud      one row per transaction, ts = transaction time

Fraud comes in episodes (a compromised card): a burst of transactions within the hour, at
merchants new to the customer (often a few "risky" merchants), for amounts far above the
customer's usual spend, mostly card-not-present (web/app); students and small businesses
are compromised more often, premium customers less. Every signal is visible in features that
exist at transaction time. Some noise keeps it from being trivial: legitimate customers also
try new merchants and make the odd large purchase, and some fraud is small.

Realistic defects, well under 5% of rows: a few malformed lines (wrong field count), a few
amounts written as ``NA`` (declared null in params.yaml, quarantined by validation) and a
few exact duplicate lines (dropped by ingest). The label file has one clean row per
transaction, whatever happened to its line in the drops.

The same arguments give the same bytes (numpy's seeded Generator, fixed formatting).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

SEGMENTS = ("standard", "premium", "student", "smb")
SEGMENT_SHARE = (0.55, 0.2, 0.15, 0.1)
SEGMENT_FRAUD_RISK = {"standard": 1.0, "premium": 0.5, "student": 2.2, "smb": 1.5}
SEGMENT_SPEND = {"standard": 40.0, "premium": 110.0, "student": 18.0, "smb": 85.0}
SEGMENT_RATE = {"standard": 2.2, "premium": 2.8, "student": 2.0, "smb": 3.5}  # txns per day
CHANNELS = ("web", "pos", "app")
FRAUD_CHANNEL_P = (0.6, 0.1, 0.3)
# Hour-of-day weights of legitimate activity (UTC): quiet at night.
HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.3, 0.3, 0.6, 1.5, 3, 4, 4, 4, 4.5, 5, 4.5, 4, 4, 4.5, 5, 5.5, 5, 4, 3, 2, 1.5]
)

EPISODE_RATE = 0.04  # compromised cards per customer-day, times the segment's risk
NA_RATE = 0.003  # amount written as NA
MALFORMED_RATE = 0.0015  # a line with a wrong number of fields
DUPLICATE_RATE = 0.002  # an exact duplicate line

HEADER = "transaction_id,customer_id,merchant_id,ts,amount,channel"


@dataclass
class Txn:
    customer: int
    merchant: int
    ts: int  # seconds since the start date, UTC
    amount: float
    channel: str
    fraud: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="landing folder to write to")
    parser.add_argument(
        "--labels", type=Path, default=None, help="label file (default <out>/../labels/...)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--merchants", type=int, default=60)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--start", default="2026-03-01", help="first day (UTC), YYYY-MM-DD")
    return parser.parse_args(argv)


def simulate(
    rng: np.random.Generator, n_customers: int, n_merchants: int, n_days: int
) -> tuple[list[Txn], list[str], np.ndarray]:
    """Transactions (unsorted), each customer's segment, and signup offsets in days."""
    segments = [str(s) for s in rng.choice(SEGMENTS, size=n_customers, p=SEGMENT_SHARE)]
    signup_days = np.where(
        np.array(segments) == "student",
        rng.integers(20, 400, size=n_customers),
        rng.integers(60, 2500, size=n_customers),
    )
    popularity = 1.0 / np.arange(1, n_merchants + 1) ** 0.8
    popularity /= popularity.sum()
    # A few small merchants (gift cards, electronics resellers) draw most of the fraud.
    risky = rng.choice(np.arange(n_merchants // 2, n_merchants), size=6, replace=False)
    hour_p = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()

    txns: list[Txn] = []
    for c in range(n_customers):
        seg = segments[c]
        habitual = rng.choice(
            n_merchants, size=int(rng.integers(3, 7)), replace=False, p=popularity
        )
        habit_p = rng.dirichlet(np.ones(len(habitual)) * 2)
        spend = SEGMENT_SPEND[seg] * float(rng.lognormal(0.0, 0.35))
        rate = SEGMENT_RATE[seg] * float(rng.gamma(4.0, 0.25))
        channel_p = rng.dirichlet((2.0, 3.0, 2.0))
        for day in range(n_days):
            for _ in range(int(rng.poisson(rate))):
                if rng.random() < 0.07:  # a legitimate first visit somewhere new
                    merchant = int(rng.choice(n_merchants, p=popularity))
                else:
                    merchant = int(rng.choice(habitual, p=habit_p))
                amount = spend * float(rng.lognormal(0.0, 0.55))
                if rng.random() < 0.02:  # the odd big purchase
                    amount *= float(rng.uniform(3.0, 8.0))
                ts = day * 86400 + int(rng.choice(24, p=hour_p)) * 3600 + int(rng.integers(3600))
                channel = str(rng.choice(CHANNELS, p=channel_p))
                txns.append(Txn(c, merchant, ts, amount, channel, 0))
            if rng.random() < EPISODE_RATE * SEGMENT_FRAUD_RISK[seg]:
                ts = day * 86400 + int(rng.integers(86400))
                small = rng.random() < 0.2  # card testing: small amounts
                for _ in range(1 + min(int(rng.poisson(1.6)), 5)):
                    if rng.random() < 0.6:
                        merchant = int(rng.choice(risky))
                    else:
                        merchant = int(rng.integers(n_merchants))
                    factor = rng.uniform(0.3, 1.5) if small else rng.uniform(2.5, 9.0)
                    channel = str(rng.choice(CHANNELS, p=FRAUD_CHANNEL_P))
                    txns.append(Txn(c, merchant, ts, spend * float(factor), channel, 1))
                    ts += 30 + int(rng.exponential(600))
    # No two transactions of one customer share a second (labels join on customer + time).
    txns = [t for t in txns if t.ts < n_days * 86400]
    txns.sort(key=lambda t: (t.customer, t.ts))
    for prev, cur in itertools.pairwise(txns):
        if cur.customer == prev.customer and cur.ts <= prev.ts:
            cur.ts = prev.ts + 1
    txns = [t for t in txns if t.ts < n_days * 86400]
    txns.sort(key=lambda t: (t.ts, t.customer))
    return txns, segments, signup_days


def iso(start: datetime, seconds: int) -> str:
    return (start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def generate(
    out: Path,
    labels: Path | None = None,
    seed: int = 7,
    n_customers: int = 300,
    n_merchants: int = 60,
    n_days: int = 21,
    start: str = "2026-03-01",
) -> dict[str, float]:
    """Write the drops and the label file; return counts (rows, fraud, defects)."""
    rng = np.random.default_rng(seed)
    start_dt = datetime.combine(date.fromisoformat(start), datetime.min.time(), tzinfo=UTC)
    txns, segments, signup_days = simulate(rng, n_customers, n_merchants, n_days)
    cid = [f"C{c:05d}" for c in range(n_customers)]
    mid = [f"M{m:03d}" for m in range(n_merchants)]

    customers = ["customer_id,segment,signup_date"] + [
        f"{cid[c]},{segments[c]},{(start_dt.date() - timedelta(days=int(d))).isoformat()}"
        for c, d in enumerate(signup_days)
    ]
    write(out / "customers" / "customers.csv", customers)

    counts = {"transactions": len(txns), "na_amount": 0, "malformed": 0, "duplicates": 0}
    by_day: dict[int, list[str]] = {d: [HEADER] for d in range(n_days)}
    for i, t in enumerate(txns):
        amount = f"{t.amount:.2f}"
        u = rng.random()
        if u < NA_RATE:
            amount = "NA"
            counts["na_amount"] += 1
        line = f"T{i + 1:07d},{cid[t.customer]},{mid[t.merchant]},{iso(start_dt, t.ts)},{amount},{t.channel}"
        if NA_RATE <= u < NA_RATE + MALFORMED_RATE:
            # Either a truncated line or an unquoted decimal comma: wrong field count.
            if rng.random() < 0.5:
                line = line.rsplit(",", 1)[0]
            else:
                line = line.replace(f",{amount},", f",{amount.replace('.', ',')},")
            counts["malformed"] += 1
        lines = by_day[t.ts // 86400]
        lines.append(line)
        if rng.random() < DUPLICATE_RATE:
            lines.append(line)
            counts["duplicates"] += 1
    for d, lines in by_day.items():
        write(
            out / "transactions" / f"{(start_dt.date() + timedelta(days=d)).isoformat()}.csv", lines
        )

    labels = labels or out.parent / "labels" / "chargebacks.csv"
    write(
        labels,
        ["customer_id,merchant_id,ts,is_fraud"]
        + [f"{cid[t.customer]},{mid[t.merchant]},{iso(start_dt, t.ts)},{t.fraud}" for t in txns],
    )
    counts["fraud"] = sum(t.fraud for t in txns)
    counts["prevalence"] = round(counts["fraud"] / max(len(txns), 1), 4)
    return counts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = generate(
        args.out, args.labels, args.seed, args.customers, args.merchants, args.days, args.start
    )
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

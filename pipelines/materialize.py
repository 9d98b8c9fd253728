"""DVC stage `materialize`: incremental load of the online store from the feature Parquet.

The online store is updated in place, one transaction per view (a server reading it sees
each view before or after, never half-written); the bookkeeping is verified against the
store first (:mod:`featureops.materialize`).
"""

from __future__ import annotations

import sys

from featureops.config import stage_params
from featureops.io import staged_outputs, write_json
from featureops.materialize import materialize_incremental


def main(argv: list[str] | None = None) -> int:
    params, paths = stage_params(__doc__, argv)
    from feast import FeatureStore

    from featureops.store.registry import RegistryLocationError, check_registry_location

    store = FeatureStore(repo_path=params["feast"]["repo"])
    try:
        check_registry_location(store)
    except RegistryLocationError as exc:
        print(f"materialize: {exc}", file=sys.stderr)
        return 1
    results = materialize_incremental(store)
    metrics = paths.metrics / "materialize.json"
    with staged_outputs(files=[metrics]) as out:
        write_json({r.view: r.as_dict() for r in results}, out.path(metrics))
    for r in results:
        print(f"materialize {r.view}: {r.as_dict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""DVC stage `materialize`: incremental load of the online store from the feature Parquet."""

from __future__ import annotations

import sys

from featureops.config import stage_params
from featureops.io import write_json
from featureops.materialize import materialize_incremental


def main(argv: list[str] | None = None) -> int:
    params, paths = stage_params(__doc__, argv)
    from feast import FeatureStore

    store = FeatureStore(repo_path=params["feast"]["repo"])
    results = materialize_incremental(store)
    write_json({r.view: r.as_dict() for r in results}, paths.metrics / "materialize.json")
    for r in results:
        print(f"materialize {r.view}: {r.as_dict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

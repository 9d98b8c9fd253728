"""DVC stage `materialize`: incremental load of the online store from the feature Parquet.

The online store is the one ``feature_store.yaml`` configures (:mod:`featureops.store.online`).
SQLite: updated in place, one transaction per view (a server reading it sees each view
before or after, never half-written), the bookkeeping inside the file. Any other store
(Redis, ...): written with Feast's public API, the bookkeeping in
``materialize_state.json`` beside the registry. ``params.yaml: feast.online_store`` names
the file this stage leaves for DVC: the SQLite store, or that bookkeeping file. The
bookkeeping is verified against the store first (:mod:`featureops.materialize`).
"""

from __future__ import annotations

import sys

from featureops.config import stage_params
from featureops.io import staged_outputs, write_json
from featureops.materialize import materialize_incremental


def main(argv: list[str] | None = None) -> int:
    params, paths = stage_params(__doc__, argv)
    from featureops.store.online import is_sqlite
    from featureops.store.online.sqlite import db_path
    from featureops.store.online.stock import state_path
    from featureops.store.registry import (
        RegistryLocationError,
        StoreConfigError,
        check_registry_location,
        feature_store,
    )

    try:
        store = feature_store(params["feast"]["repo"])
        check_registry_location(store)
    except (StoreConfigError, RegistryLocationError) as exc:
        print(f"materialize: {exc}", file=sys.stderr)
        return 1
    sqlite = is_sqlite(store.config)
    written = (
        db_path(store.config, store.repo_path)
        if sqlite
        else state_path(store.config, store.repo_path)
    )
    declared = paths.root / params["feast"]["online_store"]
    if written.resolve() != declared.resolve():
        kind = "online store" if sqlite else f"{store.config.online_store.type} bookkeeping"
        print(
            f"materialize: params.yaml feast.online_store is {params['feast']['online_store']}, "
            f"but this stage writes the {kind} to {written}: set it to that path",
            file=sys.stderr,
        )
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

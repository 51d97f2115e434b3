"""Opens every aggregate table of a crosswalk run with pyarrow, pandas, polars and DuckDB.

A documented check (docs/aggregates.md §8), not part of `cargo test`: it needs the four
libraries, which CI does not install. Usage:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r tests/scripts/requirements.txt
    /tmp/venv/bin/python tests/scripts/check_aggregates.py crosswalk-demo/run/aggregates

For each table it checks that all four read the same number of rows, that the file says it is
the published view, and that every suppressed row has a null count (never a number) in each.
"""
import glob
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq

COUNT_COLUMNS = ("persons", "count")


def main(directory: str) -> None:
    paths = sorted(glob.glob(f"{directory}/*.parquet"))
    if not paths:
        sys.exit(f"no .parquet files in {directory}")
    for path in paths:
        table = pq.read_table(path)
        meta = {
            k.decode(): v.decode()
            for k, v in pq.read_metadata(path).metadata.items()
            if k.startswith(b"crosswalk.")
        }
        assert meta.get("crosswalk.view") == "published", (path, meta)
        frame = pd.read_parquet(path, dtype_backend="numpy_nullable")
        polars_frame = pl.read_parquet(path)
        duck_rows = duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall()[0][0]
        duck_keys = duckdb.sql(
            f"SELECT count(*) FROM parquet_kv_metadata('{path}') "
            "WHERE decode(key) LIKE 'crosswalk.%'"
        ).fetchall()[0][0]
        assert len(frame) == len(polars_frame) == duck_rows == table.num_rows, path
        assert duck_keys == len(meta), path
        suppressed = table.column("suppressed").to_pylist()
        column = next(c for c in COUNT_COLUMNS if c in table.column_names)
        values = table.column(column).to_pylist()
        assert all(v is None for v, s in zip(values, suppressed) if s), path
        assert int(frame[column].isna().sum()) == sum(suppressed), path
        assert polars_frame[column].null_count() == sum(suppressed), path
        duck_nulls = duckdb.sql(
            f"SELECT count(*) FROM '{path}' WHERE {column} IS NULL AND suppressed"
        ).fetchall()[0][0]
        assert duck_nulls == sum(suppressed), path
        print(
            f"{path.split('/')[-1]:32} rows {table.num_rows:5}  suppressed {sum(suppressed):5}  "
            f"pandas {frame[column].dtype}  polars {polars_frame[column].dtype}"
        )
    print(f"{len(paths)} tables open alike in pyarrow, pandas, polars and DuckDB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "crosswalk-demo/run/aggregates")

"""Copy a model's keyed datasets into MySQL, in one transaction per wiki.

Tables are created first (DDL commits implicitly in MySQL), then every changed dataset is
replaced and its checksum recorded inside one transaction: a recommending process reading
the tables sees either the old model or the new one, never a mix. Datasets whose checksum
is already recorded are skipped, so reloading an unchanged model costs nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from model.datasets import DATASETS, DatasetError, SqliteStore, mysql_connect, mysql_table

log = logging.getLogger("addlink.model.load")

BATCH = 2000
_COLUMN_TYPES = {
    "link_prob": "DOUBLE NOT NULL",
    "total": "INT UNSIGNED NOT NULL",
    "kurtosis": "DOUBLE NOT NULL",
    "targets": "MEDIUMBLOB NOT NULL",
    "origin": "MEDIUMBLOB NOT NULL",
    "target": "VARBINARY(1000) NOT NULL",
    "page_id": "INT UNSIGNED NOT NULL",
    "vector_row": "INT UNSIGNED NOT NULL",
    "indegree": "INT UNSIGNED NOT NULL",
}
CHECKSUMS_TABLE = "addlink_datasets"


def ensure_tables(conn, wiki: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKSUMS_TABLE} ("
            "wiki VARBINARY(64) NOT NULL, dataset VARBINARY(32) NOT NULL, "
            "checksum VARBINARY(64) NOT NULL, PRIMARY KEY (wiki, dataset)) ENGINE=InnoDB"
        )
        for dataset, (_, _, key, values) in DATASETS.items():
            columns = ", ".join(f"{v} {_COLUMN_TYPES[v]}" for v in values)
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {mysql_table(wiki, dataset)} ("
                f"{key} VARBINARY(1000) NOT NULL PRIMARY KEY, {columns}) ENGINE=InnoDB"
            )


def recorded_checksums(conn, wiki: str) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT dataset, checksum FROM {CHECKSUMS_TABLE} WHERE wiki = %s", (wiki.encode(),)
        )
        return {d.decode(): c.decode() for d, c in cur.fetchall()}


def load(model_dir: str | Path, url: str, wiki: str | None = None) -> dict[str, str]:
    """Load the datasets of ``model_dir`` into the MySQL database at ``url``.

    Returns dataset -> "loaded" or "unchanged".
    """
    import json

    model_dir = Path(model_dir)
    manifest_path = model_dir / "manifest.json"
    if not manifest_path.is_file():
        raise DatasetError(f"no model at {model_dir} (manifest.json missing)")
    manifest = json.loads(manifest_path.read_text())
    if wiki is not None and wiki != manifest["wiki"]:
        raise DatasetError(f"--wiki {wiki} but the model at {model_dir} is {manifest['wiki']}")
    wiki = manifest["wiki"]
    source = SqliteStore(model_dir)
    conn = mysql_connect(url)
    result: dict[str, str] = {}
    try:
        ensure_tables(conn, wiki)
        before = recorded_checksums(conn, wiki)
        conn.autocommit(False)
        conn.begin()
        with conn.cursor() as cur:
            for dataset, (_, _, key, values) in DATASETS.items():
                checksum = manifest["checksums"][dataset]
                if before.get(dataset) == checksum:
                    result[dataset] = "unchanged"
                    continue
                table = mysql_table(wiki, dataset)
                cur.execute(f"DELETE FROM {table}")
                sql = (
                    f"INSERT INTO {table} ({key}, {', '.join(values)}) "
                    f"VALUES ({', '.join(['%s'] * (len(values) + 1))})"
                )
                batch = []
                for row in source.rows(dataset):
                    batch.append(tuple(v.encode() if isinstance(v, str) else v for v in row))
                    if len(batch) >= BATCH:
                        cur.executemany(sql, batch)
                        batch = []
                if batch:
                    cur.executemany(sql, batch)
                cur.execute(
                    f"REPLACE INTO {CHECKSUMS_TABLE} (wiki, dataset, checksum) VALUES (%s, %s, %s)",
                    (wiki.encode(), dataset.encode(), checksum.encode()),
                )
                result[dataset] = "loaded"
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        source.close()
        conn.close()
    log.info("model loaded", extra={"wiki": wiki, "datasets": result})
    return result

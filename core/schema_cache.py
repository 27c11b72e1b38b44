"""Metadata documents already found valid, remembered on disk between processes.

Validating a document against the meta-schema (JSON Schema 2020-12 with ``if``/``then`` per field
type and ``unevaluatedProperties``) is most of an app's start-up: ~0.05–0.3 s for an entity of
50 fields, so 100 custom entities add many seconds to every ``pserve`` start, test and CLI call.
A document's result depends only on its content, the meta-schema and the jsonschema version,
so the SHA-256 of those is written to a file once the document passed, and later processes skip
validating it. Only passes are kept (a bad document is validated, and reported, every time).

The folder is ``$CRM_CACHE_DIR`` (``off`` turns the cache off), else ``$XDG_CACHE_HOME/crm`` or
``~/.cache/crm``; a folder that cannot be written just means no cache.
"""
import hashlib
import os
from pathlib import Path

ENV = "CRM_CACHE_DIR"


def folder():
    value = os.environ.get(ENV)
    if value == "off":
        return None
    if value:
        return Path(value)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crm"


class ValidDocuments:
    """``digest in cache`` and ``cache.add(digest)`` for documents that passed ``schema_text``."""

    def __init__(self, schema_text, version):
        base = folder()
        tag = hashlib.sha256(f"{version}\x00{schema_text}".encode()).hexdigest()[:16]
        self.path = base / f"valid-metadata-{tag}.txt" if base else None
        self.known = set()
        if self.path is not None:
            try:
                self.known = set(self.path.read_text("ascii").split())
            except (OSError, UnicodeDecodeError):
                pass

    @staticmethod
    def digest(kind, text):
        return hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()

    def __contains__(self, digest):
        return digest in self.known

    def add(self, digest):
        self.known.add(digest)
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="ascii") as f:
                f.write(digest + "\n")  # one short append: lines from concurrent processes do not mix
        except OSError:
            self.path = None

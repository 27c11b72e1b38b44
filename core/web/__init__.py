"""Web layer: thin Pyramid views over the record service (request → view → RecordService → SQL)."""

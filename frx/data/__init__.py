"""Input pipelines: sources -> host ops (decode, crop, flip; uint8) -> batches -> device ops."""

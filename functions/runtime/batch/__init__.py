"""Batch scoring: files under `batch/<model>/input/` scored in streaming chunks, shardable.

`layout` (keys and run ids), `source` (byte-range reads), `csv` / `jsonl` / `npy` / `text` /
`numbers` / `cells` (formats), `scoring` (rows -> model), `job` (the streaming loop), `run`
(one idempotent run), `shards` / `merge` (the Distributed Map plan, run locally too).
"""

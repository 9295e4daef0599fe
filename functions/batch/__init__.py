"""The batch function: S3 -> SQS events (and Step Functions shard tasks) in, scored files out."""

"""Rollouts: shift an alias's traffic to a candidate version step by step, judge each step on
per-version metrics, and roll back at once on a breach. Transport-free: the CLI loop, the
control plane and the AWS Step Functions function all drive `engine.RolloutEngine`."""

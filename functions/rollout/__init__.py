"""The Rollout function: one check of a rollout per Step Functions task (infra/statemachines/rollout.asl.json)."""

"""`aiaas train SPEC [--publish] [--alias A]`: run a training job (see training/README.md)."""

from __future__ import annotations

import argparse
import json

from functions.runtime import names


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from training.command import add_arguments

    p = sub.add_parser(
        "train",
        help="train a model from a job spec, export ONNX, check parity (--publish: publish it)",
        description="Train from a YAML/JSON job spec; --publish stores it in the registry.",
    )
    add_arguments(p)
    p.add_argument(
        "--submit",
        action="store_true",
        help="train on the stack's AWS Batch GPU queue and publish there (docs/deploy.md)",
    )
    p.add_argument("--job-queue", help="with --submit: queue ($AIAAS_TRAINING_JOB_QUEUE)")
    p.add_argument(
        "--job-definition", help="with --submit: job definition ($AIAAS_TRAINING_JOB_DEFINITION)"
    )
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    if args.submit and not args.check:
        return cmd_submit(args)
    from infra.cli.stop_signals import answered, stopped_by_signals
    from training.command import run_train

    if args.submit:  # --check: what the job would refuse is refused here; nothing is submitted
        from infra.aws_batch import submittable_spec

        submittable_spec(args.spec)
    # SIGTERM and SIGHUP (a CI runner's timeout or cancel) unwind as Ctrl-C does: the publish
    # removes the files it sent. By default the process died where it stood, with no line, and
    # left the model in the store under a version with no manifest; the retried job's model,
    # whose bytes differ, was then refused for that version (hunt_journey7 1). Once the version
    # exists, a stop must not say "interrupted" (143), leave its --alias unset and remove --out,
    # where the retry is refused as published (rev13 2): from then on it is ignored, as publish
    # does once its version is written.
    with stopped_by_signals():
        return run_train(args, on_published=answered)


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit the spec as an AWS Batch job; the job trains and publishes to the stack's store."""
    import boto3

    from functions.runtime.reason_flag import alias_reason
    from infra.aws_batch import resolve_target, submit, submit_request
    from training.spec import load_spec

    alias = names.alias_name(args.alias) if args.alias else None
    # A reason AIAAS_REQUIRE_REASON wants is asked here, before anything is submitted; the job
    # runs `python -m training ... --reason`, and its alias move keeps it.
    reason = alias_reason(args, alias or load_spec(args.spec).alias)
    queue, definition = resolve_target(args.job_queue, args.job_definition)
    request = submit_request(
        args.spec, queue=queue, definition=definition, alias=alias, version=args.version,
        reason=reason,
    )  # fmt: skip
    job = submit(boto3.client("batch"), request)
    if args.json:  # stdout: one JSON document, as every --json
        document = {
            "submitted": True,
            "model": request["tags"]["aiaas:model"],
            "job_name": job["jobName"],
            "job_id": job["jobId"],
            "job_arn": job.get("jobArn"),
            "queue": queue,
            "job_definition": definition,
        }
        print(json.dumps(document))
        return 0
    print(f"submitted {job['jobName']} (job id {job['jobId']}) to {queue}")
    return 0

"""tests.moto_atomic's server with a thread switch every 10 µs instead of 5 ms (a race test's).

At Python's default interval a switch rarely lands inside moto's few lines between a check and
a write, so a race test over a few seconds cannot tell a locked server from an unlocked one;
at 10 µs unlocked moto shows double wins and 500s within seconds (see test_s3_conditional_race).
"""

from tests.moto_atomic import serve

if __name__ == "__main__":
    serve(switch_interval=1e-5)

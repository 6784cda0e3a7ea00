"""The example driver `greeter` (conveyor up starts it): greets whoever the job's WHO names,
and fails for `nobody`. Written with the Python SDK (sdk/python)."""

import time

from conveyor_driver import Driver, DriverManager, DriverResult


def reconcile(payload, event, run_id, logger):
    who = payload["env"].get("WHO", "world")
    logger.log(f"{event}: greeting {who} for {payload['product']} #{payload['build_number']}", who=who)
    for job, outputs in sorted(payload["steps"].items()):
        logger.log(f"step {job} gave {outputs}", step=job)
    time.sleep(1)  # some work, so the job is seen running
    if who == "nobody":
        return DriverResult(success=False, message="there is nobody to greet")
    return DriverResult(success=True, message=f"greeted {who}", data={"GREETING": f"hello {who}"})


if __name__ == "__main__":
    DriverManager(Driver(name="greeter", resources=["greeting"], reconcile=reconcile)).run()

"""The example driver `builder`, the first step of the `release` pipeline in
docs/pipelines.md (Python SDK, sdk/python): "builds" the image a resource of type `app`
names, and hands the artifact to the later steps as its output ARTIFACT."""

from conveyor_driver import Driver, DriverManager, DriverResult


def reconcile(payload, event, run_id, logger):
    resource = payload["resource"] or {}
    image = resource.get("spec", {}).get("image", {})
    artifact = f"{image.get('repo', 'unknown')}:{image.get('tag', 'latest')}"
    logger.log(f"{event}: building {artifact} (run {run_id})", step="build")
    if event == "delete":
        return DriverResult(success=True, message=f"nothing to build for a deleted {resource.get('name')}",
                            data={"ARTIFACT": artifact})
    return DriverResult(success=True, message=f"built {artifact}", data={"ARTIFACT": artifact})


if __name__ == "__main__":
    DriverManager(Driver(name="builder", resources=[], reconcile=reconcile)).run()

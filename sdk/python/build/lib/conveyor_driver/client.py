"""A small client for the orchestrator's resources API (Conveyor CI's shapes: resource
definitions, resources, pipelines) and its log API."""

from urllib.parse import quote

from ._http import Http, server_and_token


def _p(*parts):
    return "/".join(quote(str(p), safe="") for p in parts)


class Client:
    """Calls the orchestrator at ``server`` (else ``CONVEYOR_SERVER``) with ``token``
    (else ``CONVEYOR_TOKEN``; the admin token for writes). Each method returns the decoded
    JSON answer and raises :class:`ConveyorError` on an error status."""

    def __init__(self, server=None, token=None):
        self._http = Http(*server_and_token(server, token))

    # Resource definitions: a JSON Schema per resource type.
    def create_resource_definition(self, definition):
        return self._http.call("POST", "/resource-definitions", definition)

    def apply_resource_definition(self, definition):
        return self._http.call("POST", "/resource-definitions/apply", definition)

    def resource_definitions(self):
        return self._http.call("GET", "/resource-definitions")

    def get_resource_definition(self, name):
        return self._http.call("GET", "/resource-definitions/" + _p(name))

    def update_resource_definition(self, name, definition):
        return self._http.call("PUT", "/resource-definitions/" + _p(name), definition)

    def delete_resource_definition(self, name):
        return self._http.call("DELETE", "/resource-definitions/" + _p(name))

    # Resources: each create, update and delete starts a run.
    def create_resource(self, resource):
        return self._http.call("POST", "/resources", resource)

    def get_resource(self, type_, name, version=None):
        parts = (type_, name) if version is None else (type_, name, version)
        return self._http.call("GET", "/resources/" + _p(*parts))

    def resources(self, type_):
        return self._http.call("GET", "/resources/" + _p(type_))

    def update_resource(self, type_, name, resource):
        return self._http.call("PUT", "/resources/" + _p(type_, name), resource)

    def delete_resource(self, type_, name):
        return self._http.call("DELETE", "/resources/" + _p(type_, name))

    # Pipelines: ordered driver steps bound to a resource type.
    def create_pipeline(self, pipeline):
        return self._http.call("POST", "/pipelines", pipeline)

    def pipelines(self):
        return self._http.call("GET", "/pipelines")

    def get_pipeline(self, name):
        return self._http.call("GET", "/pipelines/" + _p(name))

    def update_pipeline(self, name, pipeline):
        return self._http.call("PUT", "/pipelines/" + _p(name), pipeline)

    def delete_pipeline(self, name):
        return self._http.call("DELETE", "/pipelines/" + _p(name))

    # Runs and their logs.
    def build(self, run_id):
        """The build a run id names (a run is a build)."""
        return self._http.call("GET", "/api/v1/builds/" + _p(run_id))

    def logs(self, runid, driver=None, pipeline=None):
        """The run's log lines (one driver's, one pipeline's when named), oldest first."""
        query = {"runid": runid, "driver": driver, "pipeline": pipeline}
        return self._http.call("GET", "/logs", query=query)["logs"]

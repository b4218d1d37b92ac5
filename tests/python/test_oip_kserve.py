"""KServe's InferenceRESTClient with RESTConfig(protocol="v2") against Myelin:
liveness, readiness, model readiness, inference (JSON and binary tensors)
equal to /predict."""

import asyncio

import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

from conftest import MODEL, check, columns


@pytest.mark.parametrize("binary", [False, True])
def test_kserve_rest_client_v2(server, expected, binary):
    async def run():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1))
        base = f"http://{server.http}"
        try:
            assert await client.is_server_live(base)
            assert await client.is_server_ready(base)
            assert await client.is_model_ready(base, MODEL)
            inputs = []
            for name, (datatype, values) in columns().items():
                tensor = InferInput(name, list(values.shape), datatype)
                tensor.set_data_from_numpy(values, binary_data=binary)
                inputs.append(tensor)
            request = InferRequest(model_name=MODEL, infer_inputs=inputs, request_id="k1")
            response = await client.infer(base, request, model_name=MODEL)
            outputs = {o.name: o.as_numpy() for o in response.outputs}
            check(expected, outputs["label"], outputs["probabilities"])
        finally:
            await client.close()

    asyncio.run(run())

"""tritonclient (HTTP with binary tensors on and off, gRPC) against Myelin:
liveness, readiness, metadata, inference equal to /predict, errors."""

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from conftest import MODEL, REGRESSOR, check, columns


def test_tritonclient_http_health_and_metadata(server):
    client = httpclient.InferenceServerClient(server.http)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert not client.is_model_ready("no-such-model")
    meta = client.get_model_metadata(MODEL)
    assert meta["platform"] == "myelin"
    assert meta["versions"] == ["1"]
    inputs = {t["name"]: (t["datatype"], t["shape"]) for t in meta["inputs"]}
    assert inputs == {"tenure": ("FP64", [-1]), "plan": ("BYTES", [-1]),
                      "monthly": ("FP64", [-1]), "autopay": ("BOOL", [-1])}
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_http_infer_equals_predict(server, expected, binary):
    client = httpclient.InferenceServerClient(server.http)
    inputs = []
    for name, (datatype, values) in columns().items():
        tensor = httpclient.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    outputs = [httpclient.InferRequestedOutput("label", binary_data=binary),
               httpclient.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer(MODEL, inputs, outputs=outputs, request_id="r1")
    check(expected, result.as_numpy("label"), result.as_numpy("probabilities"))
    # Without requested outputs tritonclient asks for every output in binary.
    result = client.infer(MODEL, inputs)
    check(expected, result.as_numpy("label"), result.as_numpy("probabilities"))


def test_tritonclient_http_errors_name_the_tensor(server):
    client = httpclient.InferenceServerClient(server.http)
    tensor = httpclient.InferInput("age", [2], "FP64")
    tensor.set_data_from_numpy(np.array([1.0, 2.0]))
    with pytest.raises(Exception, match="unknown input tensor `age`"):
        client.infer(MODEL, [tensor])


def test_tritonclient_grpc_health_metadata_and_infer(server, expected):
    client = grpcclient.InferenceServerClient(server.grpc)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    meta = client.get_model_metadata(MODEL, as_json=True)
    assert meta["platform"] == "myelin"
    assert {t["name"] for t in meta["inputs"]} == {"tenure", "plan", "monthly", "autopay"}
    inputs = []
    for name, (datatype, values) in columns().items():
        tensor = grpcclient.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    result = client.infer(MODEL, inputs)
    check(expected, result.as_numpy("label"), result.as_numpy("probabilities"))
    result = client.infer(MODEL, inputs, outputs=[grpcclient.InferRequestedOutput("label")])
    assert result.as_numpy("probabilities") is None
    check(expected, result.as_numpy("label"), expected[1])
    with pytest.raises(Exception, match="unknown input tensor `age`"):
        bad = grpcclient.InferInput("age", [2], "FP64")
        bad.set_data_from_numpy(np.array([1.0, 2.0]))
        client.infer(MODEL, [bad])


def regression_inputs(module, rows, binary=None):
    inputs = []
    for name in ("x1", "x2"):
        values = np.array([r[name] for r in rows], dtype=np.float64)
        tensor = module.InferInput(name, list(values.shape), "FP64")
        if binary is None:
            tensor.set_data_from_numpy(values)
        else:
            tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_regression_value_is_fp32_predict(server, regressor, binary):
    rows, want = regressor
    client = httpclient.InferenceServerClient(server.http)
    meta = client.get_model_metadata(REGRESSOR)
    assert meta["outputs"] == [{"name": "value", "datatype": "FP32", "shape": [-1]}]
    outputs = [httpclient.InferRequestedOutput("value", binary_data=binary)]
    result = client.infer(REGRESSOR, regression_inputs(httpclient, rows, binary),
                          outputs=outputs)
    assert result.get_output("value")["datatype"] == "FP32"
    got = result.as_numpy("value")
    assert got.shape == (len(rows),)
    # /predict's value rounded to float32.
    np.testing.assert_array_equal(got.astype(np.float32), want)
    grpc = grpcclient.InferenceServerClient(server.grpc)
    result = grpc.infer(REGRESSOR, regression_inputs(grpcclient, rows))
    assert result.get_output("value").datatype == "FP32"
    np.testing.assert_array_equal(result.as_numpy("value"), want)

"""Independent reader for the export test: parses a safetensors file with json + numpy only, undoes the
Hugging Face rotate-half permutation of q_proj / k_proj itself, and compares every tensor with the
values fireopt holds in memory (interleaved RoPE layout), given as expected.json + expected.f32.

    python3 compare_tensors.py <model.safetensors> <expected dir>
Prints one JSON object: tensors compared, mismatches, dtypes seen, max abs difference.
"""
import json
import struct
import sys

import numpy as np


def main(path, expected_dir):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
        data = f.read()
    with open(f"{expected_dir}/expected.json") as f:
        expected = json.load(f)
    values = np.fromfile(f"{expected_dir}/expected.f32", dtype="<f4")
    names_in_file = sorted(k for k in header if k != "__metadata__")
    mismatches = []
    worst = 0.0
    dtypes = set()
    end_of_data = 0
    for item in expected["tensors"]:
        name = item["name"]
        info = header.get(name)
        if info is None:
            mismatches.append(f"{name}: missing")
            continue
        begin, end = info["data_offsets"]
        end_of_data = max(end_of_data, end)
        dtypes.add(info["dtype"])
        raw = data[begin:end]
        if info["dtype"] == "F32":
            got = np.frombuffer(raw, dtype="<f4")
        elif info["dtype"] == "F16":
            got = np.frombuffer(raw, dtype="<f2")
        else:
            mismatches.append(f"{name}: dtype {info['dtype']}")
            continue
        if list(info["shape"]) != item["shape"]:
            mismatches.append(f"{name}: shape {info['shape']} != {item['shape']}")
            continue
        got = got.reshape(item["shape"])
        want = values[item["offset"] : item["offset"] + int(np.prod(item["shape"]))].reshape(item["shape"])
        if item.get("rope_heads"):
            # HF row h*hd + r*half + i holds interleaved row h*hd + 2i + r.
            heads = item["rope_heads"]
            rows, cols = item["shape"]
            hd = rows // heads
            got = got.reshape(heads, 2, hd // 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)
        if info["dtype"] == "F16":
            want = want.astype(np.float16)  # numpy's own round-to-nearest-even
            same = np.array_equal(got.view(np.uint16), want.view(np.uint16))
        else:
            same = np.array_equal(got.view(np.uint32), want.view(np.uint32))
        worst = max(worst, float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()))
        if not same:
            mismatches.append(f"{name}: values differ")
    extra = [k for k in names_in_file if k not in {t["name"] for t in expected["tensors"]}]
    print(json.dumps({
        "tensors": len(expected["tensors"]),
        "in_file": len(names_in_file),
        "extra": extra,
        "mismatches": mismatches,
        "dtypes": sorted(dtypes),
        "max_abs_diff": worst,
        "data_bytes": len(data),
        "data_end": end_of_data,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

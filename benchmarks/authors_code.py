"""The authors' code that the baseline benchmarks read and run: lileipisces/NRT, Att2Seq and PETER, at the commits
the PEPLER paper's comparison used, with the git blob id of each file involved (main.py as committed, before the
one patch today's torch needs: ``torch.load(f, weights_only=False)``).

Used by baselines_fidelity.py (module.py, utils.py) and bench_baselines.py (all three).
"""

from __future__ import annotations

from typing import Any

AUTHORS: dict[str, dict[str, Any]] = {
    "NRT": {
        "url": "https://github.com/lileipisces/NRT",
        "commit": "d457fc8b5f528d5ddf6407df0b1201bec2909c16",
        "blobs": {
            "main.py": "3b75bd41569ed7ac67817fe01bc51213b3eb54c0",
            "module.py": "a788dc5fe4c6c4ac38befbe1df3f8ecacf201cd9",
            "utils.py": "412b83b6809d6fbe067a94fd994fe727ad4c95c5",
        },
    },
    "Att2Seq": {
        "url": "https://github.com/lileipisces/Att2Seq",
        "commit": "acd6f9670b3da3acf498fd600a6eec9164303b04",
        "blobs": {
            "main.py": "a1c82a20ada855bc026673953bf058927b2cbb91",
            "module.py": "5ba845e50056babfe26e3aa84067920efe26db02",
            "utils.py": "cefef8ffcb77bd5edf04b2f92d79f2d31c0e8ad0",
        },
    },
    "PETER": {
        "url": "https://github.com/lileipisces/PETER",
        "commit": "1f1d7f616fcce69c90b5cc15ad87d815acc6a753",
        "blobs": {
            "main.py": "77fc11ac752041082c04f5af7b70ec866111b1b2",
            "module.py": "15a4fd631a073630dd22923895a4e3f038ec337e",
            "utils.py": "90c689f5b5edac9c869c9b788c726fe47b20ba27",
        },
    },
}

"""Which device the train stage would train on, in one line: `make device`.

    python -m tools.device

The train stage prints the same line before its first epoch (rowlstm/train_device.py).
"""

from rowlstm.errors import cli
from rowlstm.train_device import device_line


def main() -> None:
    print(device_line())


if __name__ == "__main__":
    cli(main)

"""Each vocoder family's test sizes, in one place: a small section for the tests that build
every family, and a section that learns in a few dozen steps for the stage tests (a test
about one family's own mechanics keeps its own sizes). A new family adds both here; the
tests that walk the registry need them."""

from __future__ import annotations

from wavegen_core.models.vocoders.config import ConditioningConfig, VocoderSection
from wavegen_core.models.vocoders.ddsp.config import DdspConfig
from wavegen_core.models.vocoders.flow.config import FlowConfig
from wavegen_core.models.vocoders.gan.config import GanConfig
from wavegen_core.models.vocoders.wavenet.config import WaveNetConfig

SMALL_HOP = 16
SMALL_CONDITIONING = ConditioningConfig(hop_length=SMALL_HOP, channels=8)
# In the registry's order. The GAN's upsampling multiplies to SMALL_HOP.
SMALL_SECTIONS: dict[str, VocoderSection] = {
    "wavenet": WaveNetConfig(
        layers=3, dilation_cycle=3, residual_channels=8, gate_channels=16, skip_channels=8
    ),
    "flow": FlowConfig(flows=2, coupling_layers=2, coupling_channels=8),
    "ddsp": DdspConfig(harmonics=4, noise_bands=2, noise_taps=15, hidden=8, layers=1),
    "gan": GanConfig(
        initial_channels=16,
        upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilations=[[1, 3]],
    ),
}

# Models that must learn from rendered chorales in a few dozen steps, each in seconds on 2
# cores (tests/stages/test_vocoder_stages.py): params-section updates at hop 64.
LEARNING_CONDITIONING: dict[str, int] = {"hop_length": 64, "channels": 16}
LEARNING_SECTIONS: dict[str, dict[str, object]] = {
    "wavenet": {
        "layers": 6,
        "dilation_cycle": 6,
        "residual_channels": 16,
        "gate_channels": 32,
        "skip_channels": 32,
        "segment_frames": 16,
    },
    "flow": {"flows": 2, "coupling_layers": 3, "coupling_channels": 16, "segment_frames": 32},
    "ddsp": {
        "harmonics": 12,
        "noise_bands": 6,
        "hidden": 32,
        "layers": 1,
        "segment_frames": 64,
        "history_frames": 64,
        "reverb_seconds": 0.1,
    },
    "gan": {
        "initial_channels": 32,
        "upsample_rates": [8, 8],
        "upsample_kernel_sizes": [16, 16],
        "resblock_kernel_sizes": [3, 7],
        "resblock_dilations": [[1, 3], [1, 3]],
        "periods": [2, 3],
        "scales": 2,
        "discriminator_channels": 4,
        "mel_n_fft": 512,
        "mel_hop_length": 64,
        "mel_bins": 40,
        "segment_frames": 32,
    },
}
LEARNING_STEPS = {"wavenet": 80, "flow": 60, "ddsp": 200, "gan": 60}
LEARNING_RATE = {"wavenet": 0.003, "flow": 0.001, "ddsp": 0.003, "gan": 0.001}

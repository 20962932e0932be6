"""Small recoverer settings shared by the tests that train every registered method: each trains one
epoch on a tiny dataset in well under a second."""

FAST = {
    "autoencoder": {"hidden": 16, "bottleneck": 8, "num_blocks": 2},
    "imder": {"steps": 3, "train_steps": 2, "channels": (8, 16), "token_dim": 8, "time_dim": 8},
    "gsdnet": {"hidden_dim": 16, "num_layers": 1, "sampling_steps": 2},
    "gsdnet_adjacency": {"hidden_dim": 16, "num_layers": 1, "sampling_steps": 2},
    "gsdnet_nograph": {"hidden_dim": 16, "num_layers": 1, "sampling_steps": 2},
    "md2n": {"hidden_dim": 16, "num_layers": 1, "sampling_steps": 3, "train_sampling_steps": 2},
    "rohydr": {"timesteps": 4, "sample_steps": 2, "train_sample_steps": 1, "width": 8, "hidden": 8,
               "fusion_dim": 8},
}

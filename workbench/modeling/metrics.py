"""The four numbers every ``train_step`` returns, defined once for the engine, the console, the workbench and the kit."""

METRIC_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")
METRIC_LABELS = {"d_loss": "D loss", "g_loss": "G loss", "d_real": "D(x)", "d_fake": "D(G(z))"}

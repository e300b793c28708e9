"""Datasets: the manifest format, the rendered training corpus, captions/Q&A from known truth,
and loaders for the public MusiLingo datasets (MusicCaps, MusicInstruct, MusicQA, LP-MusicCaps)."""

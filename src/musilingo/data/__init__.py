"""Datasets: the manifest format, the rendered training corpus, captions/Q&A from known truth,
loaders for the public MusiLingo datasets (MusicCaps, MusicInstruct, MusicQA, LP-MusicCaps) and
text-only samples from the MusicCaps captions."""

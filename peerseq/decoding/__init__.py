"""Running a peer over data: its hypotheses for a split (validation, `peerseq decode` and
`evaluate`), frozen teachers' cached hypotheses (sequence-level KD) and hypothesis files."""

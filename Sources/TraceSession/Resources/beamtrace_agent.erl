%% beamtrace agent (being built).

// BeamDistribution: EPMD, the distribution handshake, a hidden node, rpc. (Being built.)

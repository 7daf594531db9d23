/** ETH_P_ALL: an AF_PACKET socket bound with it sees every EtherType (the BPF filter narrows). */
export const ETH_P_ALL_PORT = 0x0003;

import HostCPU

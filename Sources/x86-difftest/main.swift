import HostCPU
print("placeholder")

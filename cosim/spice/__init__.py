"""The dialect-neutral tile circuit, the ngspice and VACASK writers and runners, OSDI and the golden netlists."""

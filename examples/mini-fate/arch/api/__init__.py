"""The python side of arch (eggroll client API), packaged into the python tree."""

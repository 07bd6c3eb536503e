"""Miniature fate_flow server entry point."""


def main():
    print("fate_flow server")


if __name__ == "__main__":
    main()

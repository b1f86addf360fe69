from flopledger.cli import main

main()

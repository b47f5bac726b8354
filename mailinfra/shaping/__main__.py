from mailinfra.shaping.service import main

main()

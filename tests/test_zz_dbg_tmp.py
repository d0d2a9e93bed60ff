from tests.test_scheduler import *  # noqa
async def test_dbg(world, caplog):
    world.clock.now = MONDAYS[0]
    with caplog.at_level(logging.INFO):
        print(await world.scheduler().run_due())
    print(caplog.text[-3000:])
